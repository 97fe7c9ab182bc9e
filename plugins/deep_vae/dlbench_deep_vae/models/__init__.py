"""One module per deep model: its objective and its registered factory."""
