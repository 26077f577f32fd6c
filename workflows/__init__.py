"""The workflow definitions. Each module holds one workflow as data (`DEFINITIONS`: every version still
running), its payload schemas, and below them the small guard and hook functions it names."""
