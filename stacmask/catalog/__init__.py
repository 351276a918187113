"""The output catalog: the folder that scenes join (atomic, locked), its validation and exports."""
