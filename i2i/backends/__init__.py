"""Style backends: each turns an RGB image into a styled RGB image."""
