"""Route tables of the HTTP functions: parse the request, call one service, map the result."""
