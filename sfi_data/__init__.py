"""sfi_data: curate an SFI-300K-style clip set from raw videos (paper section 3.3.1)."""

__version__ = "0.1.0"
