"""HTTP routes: thin functions that parse, call a service on app.state, and serialise."""
