CREATE TABLE `image_pushes` (
	`image_id` text NOT NULL,
	`position` integer NOT NULL,
	`workspace_id` text NOT NULL,
	`build_id` text NOT NULL,
	`reference` text NOT NULL,
	`secret_name` text,
	`status` text DEFAULT 'pending' NOT NULL,
	`digest` text,
	`message` text,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`image_id`, `position`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `image_pushes_build` ON `image_pushes` (`build_id`);