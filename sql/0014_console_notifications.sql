-- The operator console, continued (issue 9): notifications kept after their job, and a version on
-- console users for the Users page.
--
-- An operator notification is a job of the callback stage (kind notify); finished jobs are deleted, so
-- the job alone cannot tell a withdrawal's timeline later that people were told. Each notification is
-- also written here, in the transaction that enqueues it (OperatorNotifications.enqueue), and stays.
-- `link` is the console page it points to (a path such as /withdrawals/42 or /queue?tab=hot); the
-- callback worker turns it into a full link with console.public_url when it delivers the text.
CREATE TABLE gateway.operator_notifications (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref    text,                             -- what it is about, as the job's ref: withdrawal:42, chain:tron
    text   text        NOT NULL,
    link   text,
    job_id bigint,                           -- the delivering job (gone once delivered)
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_notifications_ref ON gateway.operator_notifications (ref, id);

-- User changes from the console's Users page carry the row's version, as review decisions do: a
-- change made on a stale page (a colleague changed the user meanwhile) is refused and changes nothing.
ALTER TABLE gateway.console_users ADD COLUMN version integer NOT NULL DEFAULT 1;

-- console_users.totp_secret holds 'aesgcm:' + base64(nonce, ciphertext, tag) when the console's key is
-- configured (console.totp_key_env / totp_key_file; sealed for the user's name); without a key, or for
-- secrets stored before one was set, the secret itself (gateway-console reads both).
