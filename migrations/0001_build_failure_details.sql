ALTER TABLE `builds` ADD `failure_exit_code` integer;--> statement-breakpoint
ALTER TABLE `builds` ADD `failure_layer_key` text;--> statement-breakpoint
ALTER TABLE `builds` ADD `failure_log_tail` text;