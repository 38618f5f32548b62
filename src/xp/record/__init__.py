"""What a run is: the record model, its values and names, the journal, YAML I/O."""
