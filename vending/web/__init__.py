"""Static assets of the web page (served by vending.api.routers.web)."""
