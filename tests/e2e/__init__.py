"""Through Meltano, into databases, and the Hub definition."""
