-- 0009: each audit event keeps its CSV record for GET /audit/export.csv, written when the event is written.
--
-- Building a record at export time cost PostgreSQL 7–8 µs a row in one backend (three jsonb to text casts, up to
-- three to_char, three formula checks, the quoting): the export could not pass ~170k rows/s on any client. An
-- event is written once and updated a few times (status, completed_at, approval), and its record depends only on
-- its own columns except for the actor's e-mail, which can change. So the record is two stored generated columns,
-- recomputed by PostgreSQL on every INSERT and UPDATE of the row, and the export (sql/lists/audit_export.sql) only
-- joins them around the actor's e-mail field:
--   csv_record_head  created_at,kind,actor_kind,actor_id
--   csv_record_tail  status,summary,payload_json and the record's CRLF
-- The rules are those of endpoints.md (GET /audit/export.csv); tests/services/test_audit_export.py reads them in
-- Python and compares every record byte for byte, including after updates.
--
-- Generated columns take only IMMUTABLE functions. to_char, to_json and an enum's text are STABLE in general (a
-- TM pattern reads the locale, to_json dispatches on any type, an enum label can be renamed); the wrappers below
-- use them where the result cannot vary: a fixed numeric pattern, text only. Renaming an enum label would need the
-- records rewritten (`UPDATE audit_events SET status = status`) in the same migration. They are PL/pgSQL: an SQL
-- function whose body is not immutable is never inlined, and PL/pgSQL calls cost less than SQL ones.
-- Cost: the table rewrite when this runs (ACCESS EXCLUSIVE for its duration); ~200 bytes more a row; ~10 µs of
-- PostgreSQL time more per INSERT or UPDATE of an event (what the export paid per row before).

CREATE FUNCTION audit_csv_time(t timestamptz) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN  -- the JSON API's timestamp: UTC, six fraction digits unless the fraction is zero, then Z
    RETURN replace(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z', '.000000Z', 'Z');
END $$;

CREATE FUNCTION audit_csv_field(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- a value a user controls as one CSV field: empty for null; a leading ' when it begins with = + - @ TAB or CR
    -- (a spreadsheet formula); then quoted, quotes doubled, only when it holds a comma, a double quote, CR or LF.
    -- The first test is the common case: nothing to do.
    SELECT CASE WHEN v IS NULL THEN ''
                WHEN v !~ E'^[=+@\t\r-]|[",\r\n]' THEN v
                WHEN v ~ E'[",\r\n]' THEN '"' || replace(CASE WHEN left(v, 1) IN ('=', '+', '-', '@', E'\t', E'\r')
                                                              THEN '''' ELSE '' END || v, '"', '""') || '"'
                ELSE '''' || v END
$$;

CREATE FUNCTION audit_json_string(v text) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN to_json(v)::text;
END $$;

CREATE FUNCTION audit_enum_label(v anyenum) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN v::text;
END $$;

ALTER TABLE audit_events
    ADD COLUMN csv_record_head text NOT NULL GENERATED ALWAYS AS (
        audit_csv_time(started_at)
        || ',' || audit_csv_field(tool)
        || ',' || CASE WHEN actor_kind = 'human' THEN 'user' ELSE audit_enum_label(actor_kind) END
        || ',' || coalesce(actor_id::text, '')
    ) STORED,
    ADD COLUMN csv_record_tail text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN status IN ('failed', 'rejected') THEN 'error' ELSE 'ok' END
        -- the summary: <kind>: <error>, else <kind> via <driver> (<status>), else <kind> (<status>)
        || ',' || audit_csv_field(CASE WHEN error IS NOT NULL THEN tool || ': ' || error
                                       WHEN driver IS NOT NULL THEN tool || ' via ' || driver
                                                                    || ' (' || audit_enum_label(status) || ')'
                                       ELSE tool || ' (' || audit_enum_label(status) || ')' END)
        -- payload_json: inputs, outputs and entity_refs as PostgreSQL writes jsonb (as GET /audit returns them),
        -- then each extra only when set (approval_required only when true); always begins with {, always quoted
        || ',"' || replace('{"inputs":' || inputs::text || ',"outputs":' || outputs::text
                           || ',"entity_refs":' || entity_refs::text
                           || coalesce(',"driver":' || audit_json_string(driver), '')
                           || coalesce(',"error":' || audit_json_string(error), '')
                           || CASE WHEN approval_required THEN ',"approval_required":true' ELSE '' END
                           || coalesce(',"approved_by":"' || approved_by::text || '"', '')
                           || coalesce(',"approved_at":"' || audit_csv_time(approved_at) || '"', '')
                           || coalesce(',"completed_at":"' || audit_csv_time(completed_at) || '"', '')
                           || '}', '"', '""')
        || E'"\r\n'
    ) STORED;
