-- The manifest repository's commit each apply read (nextmavens.control.store.runs), and the one each project was
-- last applied from (nextmavens.control.store.projects). `dirty`: the work tree held uncommitted changes then (the
-- platform service applies a change before it commits it). NULL: the projects folder was no git repository.
ALTER TABLE apply_runs ADD COLUMN manifest_commit text;
ALTER TABLE apply_runs ADD COLUMN manifest_dirty boolean;
ALTER TABLE projects ADD COLUMN last_apply_commit text;
ALTER TABLE projects ADD COLUMN last_apply_dirty boolean;
