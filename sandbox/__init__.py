"""The sandbox: everything that pretends to be the outside world, plus the embedded-stack launcher.

Production code never imports this package; it only changes endpoints through configuration.
"""
