ALTER TABLE `fleets` ADD `trusted_with_secrets` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `job_tokens` ADD `scope` text;