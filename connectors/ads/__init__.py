"""Ad-platform audience connectors: Meta Custom Audiences and Google Customer Match."""
