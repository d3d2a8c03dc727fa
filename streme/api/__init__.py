"""The operator's surface: the JSON API under /api/, /metrics, and who may use them."""
