CREATE TABLE `image_indexes` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`entries` text NOT NULL,
	`digest` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `image_indexes_workspace` ON `image_indexes` (`workspace_id`);--> statement-breakpoint
CREATE INDEX `image_indexes_digest` ON `image_indexes` (`digest`);--> statement-breakpoint
ALTER TABLE `fleets` ADD `platforms` text DEFAULT '{"native":["linux/amd64"],"emulated":[]}' NOT NULL;