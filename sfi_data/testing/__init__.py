"""Test helpers that ship with the package: a toy dataset builder and a fake vLLM server."""
