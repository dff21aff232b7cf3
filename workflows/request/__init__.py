"""A request workflow's helpers: its record, validation, operator actions and compensation, and
its side of each long-lived workflow it waits on (coordinator, batcher, close quota, account)."""
