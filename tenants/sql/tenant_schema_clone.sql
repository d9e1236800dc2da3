-- public.tenant_schema_clone(source, target): create schema `target` as an exact copy of
-- `source` (the migrated tenant template), in one call and inside the caller's transaction.
--
-- Exact means what the catalog holds comes out as migrations would have left it: every
-- constraint and index keeps its name and definition, sequences keep their names, options,
-- ownership and current values, column defaults name the target's sequences, triggers and
-- the functions they call, views, and comments; then the rows (migration history, content
-- types, permissions) are copied. django-tenants' clone_schema() renamed unique constraints
-- to PostgreSQL's defaults, which broke code that matches an IntegrityError by name.
--
-- How: definitions are read with pg_get_*def() while search_path is the source alone, so they
-- name the source's objects unqualified; they are then run with search_path set to the target,
-- where the same names resolve to the copies. Objects it cannot copy exactly (types, domains,
-- partitioned, foreign and materialised tables, row-level security policies, aggregates)
-- make it refuse rather than clone something different; tests/ compares the catalogs.
--
-- Installed once by `platform_setup` (tenants.provisioning.clone_function_install), not per
-- signup. The function's SET clauses restore the caller's search_path on exit.
CREATE OR REPLACE FUNCTION public.tenant_schema_clone(source text, target text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
SET check_function_bodies = off
AS $clone$
DECLARE
    src oid;
    r record;
    stmt text;
    cols text;
    prefix text;
    -- Statements in the order they must run: functions, sequences, tables, rows, defaults,
    -- sequence ownership, index-backed constraints, other indexes, other constraints,
    -- triggers, views, comments.
    ddl text[] := '{}';
    fkeys text[] := '{}';
    late text[] := '{}';
BEGIN
    SELECT oid INTO src FROM pg_namespace WHERE nspname = source;
    IF src IS NULL THEN
        RAISE EXCEPTION 'schema "%" does not exist', source USING ERRCODE = 'invalid_schema_name';
    END IF;

    SELECT string_agg(format('%s %I', kind, name), ', ') INTO stmt FROM (
        SELECT CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table'
                              ELSE 'materialized view' END AS kind, c.relname AS name
        FROM pg_class c WHERE c.relnamespace = src AND c.relkind IN ('p', 'f', 'm')
        UNION ALL
        SELECT 'type', t.typname FROM pg_type t
        WHERE t.typnamespace = src AND t.typtype IN ('e', 'd', 'r', 'm', 'b') AND t.typcategory <> 'A'
           OR (t.typnamespace = src AND t.typtype = 'c'
               AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
        UNION ALL
        SELECT 'policy', p.polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = src
        UNION ALL
        SELECT 'aggregate', p.proname FROM pg_proc p WHERE p.pronamespace = src AND p.prokind IN ('a', 'w')
        UNION ALL
        SELECT 'statistics', s.stxname FROM pg_statistic_ext s WHERE s.stxnamespace = src
    ) unsupported;
    IF stmt IS NOT NULL THEN
        RAISE EXCEPTION 'tenant_schema_clone() cannot copy % of schema "%"', stmt, source
            USING ERRCODE = 'feature_not_supported';
    END IF;

    PERFORM set_config('search_path', quote_ident(source), true);

    -- Functions first: defaults, checks and triggers may call them.
    FOR r IN SELECT p.oid, p.prokind FROM pg_proc p WHERE p.pronamespace = src ORDER BY p.oid LOOP
        -- The header is always schema-qualified: CREATE OR REPLACE FUNCTION "source".name(...
        prefix := format('CREATE OR REPLACE %s %I.', CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                         source);
        stmt := pg_get_functiondef(r.oid);
        IF left(stmt, length(prefix)) <> prefix THEN
            RAISE EXCEPTION 'unexpected definition of %', r.oid::regprocedure;
        END IF;
        ddl := ddl || (format('CREATE OR REPLACE %s %I.', CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                              target) || substr(stmt, length(prefix) + 1));
    END LOOP;

    -- Sequences of their own (identity columns make theirs with the table).
    FOR r IN
        SELECT c.relname, c.relpersistence, s.* FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
        WHERE c.relnamespace = src AND c.relkind = 'S'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.refobjsubid > 0 AND d.deptype = 'i')
        ORDER BY c.oid
    LOOP
        ddl := ddl || format(
            'CREATE %sSEQUENCE %I AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %sCYCLE',
            CASE WHEN r.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, r.relname,
            format_type(r.seqtypid, NULL), r.seqincrement, r.seqmin, r.seqmax, r.seqstart, r.seqcache,
            CASE WHEN r.seqcycle THEN '' ELSE 'NO ' END
        );
    END LOOP;

    -- Tables: columns, NOT NULL, identity (with the sequence's options), generated columns,
    -- storage and compression; constraints and indexes follow under their own names.
    FOR r IN
        SELECT c.oid, c.relname, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
               c.relreplident
        FROM pg_class c WHERE c.relnamespace = src AND c.relkind = 'r' ORDER BY c.oid
    LOOP
        ddl := ddl || format(
            'CREATE %sTABLE %I (LIKE %I.%I INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE '
            'INCLUDING COMPRESSION)%s',
            CASE WHEN r.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, r.relname, source, r.relname,
            CASE WHEN r.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(r.reloptions, ', ') || ')' END
        );
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols FROM pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        IF cols IS NOT NULL THEN
            late := late || format('INSERT INTO %I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %I.%I',
                                   r.relname, cols, cols, source, r.relname);
        END IF;
        IF r.relrowsecurity THEN
            late := late || format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', r.relname);
        END IF;
        IF r.relforcerowsecurity THEN
            late := late || format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', r.relname);
        END IF;
        IF r.relreplident IN ('f', 'n') THEN
            late := late || format('ALTER TABLE %I REPLICA IDENTITY %s', r.relname,
                                   CASE r.relreplident WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END);
        END IF;
    END LOOP;
    ddl := ddl || late;

    -- Column defaults, read now so that nextval('seq') names the target's sequence.
    FOR r IN
        SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) AS expr
        FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE c.relnamespace = src AND c.relkind = 'r' AND a.attgenerated = '' ORDER BY c.oid, a.attnum
    LOOP
        ddl := ddl || format('ALTER TABLE %I ALTER COLUMN %I SET DEFAULT %s', r.relname, r.attname, r.expr);
    END LOOP;

    -- OWNED BY of the sequences made above (serial-style columns).
    FOR r IN
        SELECT s.relname AS seq, t.relname AS tbl, a.attname
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
          AND s.relnamespace = src AND s.relkind = 'S' AND d.refobjsubid > 0
    LOOP
        ddl := ddl || format('ALTER SEQUENCE %I OWNED BY %I.%I', r.seq, r.tbl, r.attname);
    END LOOP;

    -- Constraints with an index (primary keys, unique, exclusion) before the indexes and foreign
    -- keys that may need them; checks and foreign keys after the rows are in.
    FOR r IN
        SELECT con.oid, con.conname, con.contype, c.relname FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        WHERE c.relnamespace = src AND c.relkind = 'r' AND con.contype IN ('p', 'u', 'x', 'c', 'f')
        ORDER BY CASE WHEN con.contype IN ('p', 'u', 'x') THEN 0 ELSE 1 END, con.oid
    LOOP
        stmt := format('ALTER TABLE %I ADD CONSTRAINT %I %s', r.relname, r.conname, pg_get_constraintdef(r.oid, true));
        IF r.contype IN ('p', 'u', 'x') THEN
            ddl := ddl || stmt;
        ELSE
            fkeys := fkeys || stmt;
        END IF;
    END LOOP;

    FOR r IN
        SELECT i.indexrelid, i.indisclustered, t.relname FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
        WHERE c.relnamespace = src AND t.relkind = 'r'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                          AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
        ORDER BY i.indexrelid
    LOOP
        -- pretty: the table is named unqualified when visible, as the constraints above are.
        ddl := ddl || pg_get_indexdef(r.indexrelid, 0, true);
    END LOOP;
    FOR r IN
        SELECT i.indisclustered, i.indisreplident, t.relname, c.relname AS idx FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
        WHERE c.relnamespace = src AND t.relkind = 'r' AND (i.indisclustered OR i.indisreplident)
    LOOP
        IF r.indisclustered THEN
            ddl := ddl || format('ALTER TABLE %I CLUSTER ON %I', r.relname, r.idx);
        END IF;
        IF r.indisreplident THEN
            ddl := ddl || format('ALTER TABLE %I REPLICA IDENTITY USING INDEX %I', r.relname, r.idx);
        END IF;
    END LOOP;
    ddl := ddl || fkeys;

    -- Triggers (those a constraint makes for itself are internal and come with it).
    FOR r IN
        SELECT tg.oid, tg.tgname, tg.tgenabled, c.relname FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
        WHERE c.relnamespace = src AND NOT tg.tgisinternal ORDER BY tg.oid
    LOOP
        ddl := ddl || pg_get_triggerdef(r.oid, true);
        IF r.tgenabled <> 'O' THEN
            ddl := ddl || format('ALTER TABLE %I %s TRIGGER %I', r.relname,
                                 CASE r.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA'
                                                  ELSE 'ENABLE ALWAYS' END, r.tgname);
        END IF;
    END LOOP;

    FOR r IN
        SELECT c.oid, c.relname, c.reloptions FROM pg_class c WHERE c.relnamespace = src AND c.relkind = 'v'
        ORDER BY c.oid
    LOOP
        ddl := ddl || format('CREATE VIEW %I%s AS %s', r.relname,
                             CASE WHEN r.reloptions IS NULL THEN ''
                                  ELSE ' WITH (' || array_to_string(r.reloptions, ', ') || ')' END,
                             pg_get_viewdef(r.oid, true));
    END LOOP;

    FOR r IN
        SELECT d.description, d.objsubid, c.relname, c.relkind, a.attname FROM pg_description d
        JOIN pg_class c ON c.oid = d.objoid
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
        WHERE d.classoid = 'pg_class'::regclass AND c.relnamespace = src
    LOOP
        IF r.objsubid > 0 THEN
            ddl := ddl || format('COMMENT ON COLUMN %I.%I IS %L', r.relname, r.attname, r.description);
        ELSE
            ddl := ddl || format('COMMENT ON %s %I IS %L',
                                 CASE r.relkind WHEN 'r' THEN 'TABLE' WHEN 'i' THEN 'INDEX' WHEN 'S' THEN 'SEQUENCE'
                                                WHEN 'v' THEN 'VIEW' END,
                                 r.relname, r.description);
        END IF;
    END LOOP;
    FOR r IN
        SELECT d.description, con.conname, c.relname FROM pg_description d
        JOIN pg_constraint con ON con.oid = d.objoid JOIN pg_class c ON c.oid = con.conrelid
        WHERE d.classoid = 'pg_constraint'::regclass AND c.relnamespace = src
    LOOP
        ddl := ddl || format('COMMENT ON CONSTRAINT %I ON %I IS %L', r.conname, r.relname, r.description);
    END LOOP;
    FOR r IN
        SELECT d.description, tg.tgname, c.relname FROM pg_description d
        JOIN pg_trigger tg ON tg.oid = d.objoid JOIN pg_class c ON c.oid = tg.tgrelid
        WHERE d.classoid = 'pg_trigger'::regclass AND c.relnamespace = src
    LOOP
        ddl := ddl || format('COMMENT ON TRIGGER %I ON %I IS %L', r.tgname, r.relname, r.description);
    END LOOP;
    FOR r IN
        SELECT d.description, p.oid, p.proname, p.prokind FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid
        WHERE d.classoid = 'pg_proc'::regclass AND p.pronamespace = src
    LOOP
        ddl := ddl || format('COMMENT ON %s %I(%s) IS %L', CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                             r.proname, pg_get_function_identity_arguments(r.oid), r.description);
    END LOOP;

    EXECUTE format('CREATE SCHEMA %I', target);
    PERFORM set_config('search_path', quote_ident(target), true);
    FOREACH stmt IN ARRAY ddl LOOP
        EXECUTE stmt;
    END LOOP;

    -- Identity sequences were made by CREATE TABLE ... LIKE, named after the table and always
    -- AS bigint: give them the source's names (the same but for a renamed table) and types.
    FOR r IN
        SELECT s.relname AS seq, format_type(seq.seqtypid, NULL) AS seqtype, t.relname AS tbl, a.attname
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid JOIN pg_sequence seq ON seq.seqrelid = s.oid
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
          AND s.relnamespace = src AND s.relkind = 'S'
    LOOP
        stmt := pg_get_serial_sequence(format('%I.%I', target, r.tbl), r.attname);
        IF stmt IS DISTINCT FROM format('%I.%I', target, r.seq) THEN
            EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', stmt, r.seq);
        END IF;
        IF (SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = format('%I.%I', target, r.seq)::regclass)
           <> r.seqtype THEN
            EXECUTE format('ALTER SEQUENCE %I.%I AS %s', target, r.seq, r.seqtype);
        END IF;
    END LOOP;
    -- Then every sequence where the source's stands.
    FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = src AND c.relkind = 'S' LOOP
        EXECUTE format('SELECT setval(%L, last_value, is_called) FROM %I.%I',
                       format('%I.%I', target, r.relname), source, r.relname);
    END LOOP;
END
$clone$;
