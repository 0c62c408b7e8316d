"""Caption prompt files (package data: they ship inside the wheel)."""
