"""The app's widgets: the header, the panel switcher, the panels and their live tables."""
