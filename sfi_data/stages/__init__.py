"""Pipeline stages: each reads rows and writes rows, and knows nothing about where it runs."""
