"""The console adapter: `align chat` and `align run`, the same engine with no platform account."""
