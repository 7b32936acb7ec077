"""The app's screens: steering forms, details, confirmation, help."""
