using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Tests.Artifacts;

[Collection(ArtifactStoreCollection.Name)]
public sealed class FileSystemArtifactStoreTests : ArtifactStoreContractTests
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pipeline-artifacts-" + Guid.NewGuid().ToString("N"));

    private FileSystemArtifactStore FileStore => (FileSystemArtifactStore)Store;

    protected override Task<IArtifactStore> CreateStoreAsync() => Task.FromResult<IArtifactStore>(new FileSystemArtifactStore(_root));

    protected override Task CorruptBehindTheStoreAsync(string path, byte[] otherBytes) =>
        File.WriteAllBytesAsync(FileStore.FullPath(path), otherBytes);

    protected override Task DeleteStoreAsync()
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_filesystem_store_has_no_download_url_of_its_own()
    {
        await Store.PutAsync("runs/1/report-0123abcd/report.md", new MemoryStream("# r"u8.ToArray()), "text/markdown");

        Assert.Null(Store.GetDownloadUri("runs/1/report-0123abcd/report.md", TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public async Task A_failed_put_leaves_no_temp_file_behind()
    {
        await Assert.ThrowsAsync<IOException>(() =>
            Store.PutAsync("runs/1/train-0123abcd/c.bin", new GeneratedStream(1 << 20, seed: 3, failAfter: 1 << 19), "application/octet-stream"));

        Assert.Empty(Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories));
    }
}
