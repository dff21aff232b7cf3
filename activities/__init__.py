"""All I/O of the engine: one module per external system, each a class with injected clients."""
