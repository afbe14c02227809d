import type { Command } from 'commander';
import { formatBytes } from '../core/index.ts';
import type { CliContext } from './context.ts';
import type { BuildAgentOptions, ImageView } from './local-actions.ts';

/** Progress goes to stderr, so `--json` leaves stdout to the one JSON document. */
function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function imageLine(image: ImageView): string {
  return `${image.ref}  ${image.digest.slice(0, 19)}  ${formatBytes(image.sizeBytes)}  ${image.unpacked ? 'unpacked' : 'not unpacked'}  pulled ${image.pulledAt}`;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * `forgelink images …`: the run image store on this machine (FORGELINK_IMAGE_DIR), which the server's runs use.
 * Local commands, like `admin`: they act on this machine's data directory, not through the API.
 */
export function addImageCommands(program: Command, cli: CliContext): void {
  const images = program.command('images').description('run images on this machine (FORGELINK_IMAGE_DIR): pull, list, rm, build agent');
  images
    .command('pull <ref>')
    .description('copy an image into the store and unpack it (oci:<dir>[:<tag>], oci-archive:<file>, docker-archive:<file>, docker://<registry>/<name>:<tag>)')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const image = await (await cli.local()).pullImage(ref, progress);
      cli.print(command, image, () => `Pulled ${imageLine(image)}`);
    });
  images
    .command('list')
    .description('list the images in the store')
    .action(async (_options: unknown, command: Command) => {
      const list = await (await cli.local()).listImages();
      cli.print(command, { images: list }, () => (list.length === 0 ? 'No images yet (runs use the host\'s system: image host).' : list.map(imageLine).join('\n')));
    });
  images
    .command('rm <ref>')
    .description('remove an image from the store (its unpacked tree too, unless another reference shares it)')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const image = await (await cli.local()).removeImage(ref);
      cli.print(command, image, () => `Removed ${image.ref} (${image.digest})`);
    });
  images
    .command('build <recipe>')
    .description('build forgelink\'s reference agent image (recipe: agent) from the Debian and npm registries, and pull it into the store')
    .option('--output <dir>', 'the OCI layout to write (default: <image dir>/build/agent)')
    .option('--package <deb>', 'a Debian package to add (repeatable)', collect, [] as string[])
    .option('--npm <pkg@version>', 'an npm package to install globally (repeatable)', collect, [] as string[])
    .option('--suite <name>', 'Debian suite (default bookworm)')
    .option('--mirror <url>', 'Debian mirror (default deb.debian.org)')
    .option('--force', 'build even when the layout was built by the same recipe and options')
    .action(async (recipe: string, options: BuildAgentOptions, command: Command) => {
      const built = await (await cli.local()).buildAgentImage(recipe, options, progress);
      cli.print(command, built, () =>
        [
          `${built.cached ? 'Reused' : `Built in ${built.seconds} s:`} ${built.ref} (recipe ${built.recipeHash.slice(0, 12)}), digest ${built.image.digest}`,
          `Use it: forgelink run --image ${built.ref} …, or for every run of a profile: FORGELINK_AGENTS='{"claude-code":{"image":"${built.ref}"}}'`,
        ].join('\n'),
      );
    });
}
