"""In-process adapters: what runs when no external broker is configured."""
