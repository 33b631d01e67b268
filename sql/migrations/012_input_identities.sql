-- What process learned of each uploaded input from the store (its HEAD: ETag and stored size) is kept in the input's
-- entry (`etag`, `stored_size`), as a streamed input keeps its sha256: a task chained on this one later keys its
-- source's dataset version by it (service/cache.py) without asking the store again, and every run reads only that
-- version of the object (worker/runner.py: If-Match), whatever is PUT through a still-valid upload URL later.
CREATE FUNCTION inputs_merged(inputs jsonb, by_name jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        jsonb_agg(CASE WHEN by_name ? (i ->> 'name') THEN i || (by_name -> (i ->> 'name')) ELSE i END ORDER BY n),
        '[]'::jsonb
    )
    FROM jsonb_array_elements(inputs) WITH ORDINALITY AS e(i, n)
$$;
