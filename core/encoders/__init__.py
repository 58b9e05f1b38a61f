"""picksel package."""
