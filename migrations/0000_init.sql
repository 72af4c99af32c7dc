CREATE TABLE `layers` (
	`workspace_id` text NOT NULL,
	`key` text NOT NULL,
	`digest` text NOT NULL,
	`reference` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`built_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`workspace_id`, `key`)
);
