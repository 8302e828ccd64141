"""Pure diagnostics: functions over readings, no I/O, tested directly."""
