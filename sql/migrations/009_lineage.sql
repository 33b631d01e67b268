-- Dataset versions (API.md): GET /tasks/{id}/lineage lists a task's children, the tasks chained on it through
-- source_task_id, in one indexed query; deleting a task (ON DELETE SET NULL of its children's source_task_id)
-- finds them the same way instead of scanning every task.
CREATE INDEX tasks_by_source ON tasks (source_task_id) WHERE source_task_id IS NOT NULL;
