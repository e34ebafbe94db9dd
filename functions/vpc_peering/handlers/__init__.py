"""Lambda entry points: one thin module per function, each naming its domain step."""
