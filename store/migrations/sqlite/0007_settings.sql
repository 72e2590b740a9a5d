-- Each account's terminal settings (font, size, theme, cursor, clipboard,
-- bell), saved by the directory from the page's settings panel so they
-- follow the user to any browser, as the session does. `body` is the JSON
-- document the directory validated (`directory_api::Settings`): the store
-- keeps it whole and never looks inside, so a setting added later needs no
-- migration. Settings go with their account.

CREATE TABLE settings (
    account    TEXT PRIMARY KEY REFERENCES accounts (name) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
