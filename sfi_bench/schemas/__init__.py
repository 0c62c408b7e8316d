"""Package data: JSON Schemas of the files sfi_bench writes."""
