// The API modules the daemon loads, in order. Each area adds its module here
// (images.ts, containers.ts, …); see ApiModule in ../context.ts for what a module may do.
import type { ApiModule } from '../context.ts';
import { buildModule } from './build.ts';
import { containerArchiveModule } from './container-archive.ts';
import { containersModule } from './containers.ts';
import { imageArchiveModule } from './image-archive.ts';
import { imagesModule } from './images.ts';
import { networksModule } from './networks.ts';
import { systemModule } from './system.ts';
import { uiModule } from './ui.ts';
import { volumesModule } from './volumes.ts';

export const API_MODULES: ApiModule[] = [
  systemModule,
  imagesModule,
  imageArchiveModule,
  containerArchiveModule,
  networksModule,
  volumesModule,
  // Last: its init restores running containers, which needs networks and volumes ready.
  containersModule,
  // After containers: RUN steps are containers.
  buildModule,
  // Last: the web UI serves the API the modules above make.
  uiModule,
];
