-- The extensions the last apply declared for each project, sorted (NULL: not recorded yet). A plan reads a
-- project database's extensions by name (one connection) only when this differs from its manifest, or the
-- number the layer role owns differs from it; otherwise shared catalogs tell it enough.
ALTER TABLE projects ADD COLUMN extensions text[];
