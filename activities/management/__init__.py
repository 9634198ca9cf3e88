"""Management commands of the activities app."""
