"""Speech synthesis: providers behind one Protocol, and the fallback chain that uses them."""
