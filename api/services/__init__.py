"""What the API does, apart from HTTP: filing a request, deciding one, reading requests and
accounts, building a change's input. Routers parse, authorize, call one of these, and answer."""
