"""125 kHz badge readers (RDM6300, ID-12LA): who is using the machine, as a pseudonym."""
