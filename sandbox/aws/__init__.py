"""Sandbox AWS: moto's server with a realism layer where moto is too kind (see ``realism``)."""
