"""The HTTP front end. It talks to Temporal only: Temporal is the store of record."""
