"""One module per screen: a view that only draws and a controller that calls the services."""
