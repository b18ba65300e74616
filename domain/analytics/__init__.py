"""Customer analytics: pure, vectorised models over whole arrays of purchases."""
