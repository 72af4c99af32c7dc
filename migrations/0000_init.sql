CREATE TABLE `build_attempts` (
	`attempt_id` text PRIMARY KEY NOT NULL,
	`build_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`attempt_no` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `build_attempts_build` ON `build_attempts` (`build_id`);--> statement-breakpoint
CREATE TABLE `build_layers` (
	`build_id` text NOT NULL,
	`key` text NOT NULL,
	`digest` text NOT NULL,
	`reference` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`built_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`build_id`, `key`)
);
--> statement-breakpoint
CREATE TABLE `builds` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`top_key` text NOT NULL,
	`layer_keys` text NOT NULL,
	`mode` text NOT NULL,
	`status` text NOT NULL,
	`failure_reason` text,
	`failure_message` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`fleet_id` text,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`log_archive` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`finished_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `builds_workspace_created` ON `builds` (`workspace_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `context_multipart_uploads` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`digest` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`part_size_bytes` integer NOT NULL,
	`r2_upload_id` text NOT NULL,
	`staging_key` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `context_multipart_uploads_workspace` ON `context_multipart_uploads` (`workspace_id`);--> statement-breakpoint
CREATE TABLE `context_uploads` (
	`workspace_id` text NOT NULL,
	`digest` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`workspace_id`, `digest`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `fleets` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text,
	`name` text NOT NULL,
	`url` text NOT NULL,
	`signing_secret_enc` text NOT NULL,
	`gpu_types` text NOT NULL,
	`max_concurrent_builds` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`disabled_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `fleets_workspace` ON `fleets` (`workspace_id`);--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`workspace_id` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`image_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `key`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `images` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`layer_keys` text NOT NULL,
	`top_key` text NOT NULL,
	`build_id` text,
	`mode` text DEFAULT 'normal' NOT NULL,
	`fresh_from` integer NOT NULL,
	`runtime_mounts` text DEFAULT '[]' NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `images_workspace_created` ON `images` (`workspace_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `images_build` ON `images` (`build_id`);--> statement-breakpoint
CREATE TABLE `job_tokens` (
	`hash` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`job_id` text NOT NULL,
	`actions` text NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `layers` (
	`workspace_id` text NOT NULL,
	`key` text NOT NULL,
	`digest` text NOT NULL,
	`reference` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`build_id` text,
	`built_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`workspace_id`, `key`)
);
--> statement-breakpoint
CREATE TABLE `registry_blobs` (
	`digest` text PRIMARY KEY NOT NULL,
	`size_bytes` integer NOT NULL,
	`r2_key` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`touched_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `registry_manifest_refs` (
	`repository` text NOT NULL,
	`manifest` text NOT NULL,
	`child` text NOT NULL,
	`kind` text NOT NULL,
	PRIMARY KEY(`repository`, `manifest`, `child`)
);
--> statement-breakpoint
CREATE INDEX `registry_manifest_refs_child` ON `registry_manifest_refs` (`child`);--> statement-breakpoint
CREATE TABLE `registry_manifests` (
	`repository` text NOT NULL,
	`digest` text NOT NULL,
	`media_type` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`subject` text,
	`artifact_type` text,
	`annotations` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`repository`, `digest`)
);
--> statement-breakpoint
CREATE INDEX `registry_manifests_subject` ON `registry_manifests` (`repository`,`subject`);--> statement-breakpoint
CREATE INDEX `registry_manifests_digest` ON `registry_manifests` (`digest`);--> statement-breakpoint
CREATE TABLE `registry_repositories` (
	`name` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`public` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `registry_repositories_workspace` ON `registry_repositories` (`workspace_id`);--> statement-breakpoint
CREATE TABLE `registry_repository_blobs` (
	`repository` text NOT NULL,
	`digest` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`repository`, `digest`)
);
--> statement-breakpoint
CREATE INDEX `registry_repository_blobs_digest` ON `registry_repository_blobs` (`digest`);--> statement-breakpoint
CREATE TABLE `registry_tags` (
	`repository` text NOT NULL,
	`tag` text NOT NULL,
	`digest` text NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`repository`, `tag`)
);
--> statement-breakpoint
CREATE INDEX `registry_tags_digest` ON `registry_tags` (`repository`,`digest`);--> statement-breakpoint
CREATE TABLE `secrets` (
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`keys` text NOT NULL,
	`ciphertext` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`workspace_id`, `name`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `tags` (
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`image_id` text NOT NULL,
	`public` integer DEFAULT false NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`workspace_id`, `name`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text,
	`kind` text NOT NULL,
	`hash` text NOT NULL,
	`name` text NOT NULL,
	`scopes` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tokens_hash_unique` ON `tokens` (`hash`);--> statement-breakpoint
CREATE INDEX `tokens_workspace` ON `tokens` (`workspace_id`);--> statement-breakpoint
CREATE TABLE `workspaces` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `workspaces_name_unique` ON `workspaces` (`name`);