return Pipeline.Jobs.Engine.AbandonedWork.Exit(await Pipeline.Jobs.Cli.Commands.InvokeAsync(args));
