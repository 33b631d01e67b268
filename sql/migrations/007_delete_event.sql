-- Deleting a task tells its user's streams: delete_task removes the task and its events, then writes one last
-- `status` event (the task as it was, "deleted": true) that must outlive the task row, so that a stream that
-- was away replays it. The event log therefore no longer cascades from tasks: delete_task deletes a task's
-- history itself.

ALTER TABLE task_events DROP CONSTRAINT task_events_task_id_fkey;
