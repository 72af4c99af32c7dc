CREATE TABLE `page_link_uses` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `page_link_uses_expires` ON `page_link_uses` (`expires_at`);--> statement-breakpoint
ALTER TABLE `images` ADD `submitted_by_token_id` text;