"""Dialog YAML as typed data: `load_dialogs(folder) -> DialogSpec`, or every problem as file:line:column."""
