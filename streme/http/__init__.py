"""HTTP/1.1 on asyncio + h11: protocol, flow control, and the pure request logic."""
